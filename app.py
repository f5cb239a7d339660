"""GPT-SoVITS Voice Studio: ``python app.py [--t2s ... --sovits ... --hubert ... --bert ... --sv ...]``.

Flags (or the matching environment variables, see ``python app.py --help``) point at local
model files; with none, the v2ProPlus weights come from the Hugging Face Hub. Everything
testable lives in ``gsv_core``: this file only starts the server.
"""

from gsv_core.server import main

if __name__ == "__main__":
    main()
