"""GPT-SoVITS Voice Studio: ``python app.py [--t2s ... --sovits ... --hubert ... --bert ... --sv ...]``.

Flags (or the matching environment variables, see ``python app.py --help``) point at local
model files; with none, the v2ProPlus weights come from the Hugging Face Hub. Everything
testable lives in ``voice_studio`` (the app) and ``gsv_core`` (the inference library):
this file only starts the server.
"""

from voice_studio.server import main

if __name__ == "__main__":
    main()
