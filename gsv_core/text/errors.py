"""The one exception type of the text frontend."""


class TextError(ValueError):
    """Input text, language, version or split method the frontend cannot handle.

    The message is plain English and says what was wrong, so an app can show it as is.
    """
