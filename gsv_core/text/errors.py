"""The one exception type of the text frontend, and the check that text is text at all."""


class TextError(ValueError):
    """Input text, language, version or split method the frontend cannot handle.

    The message is plain English and says what was wrong, so an app can show it as is.
    """


def check_readable(text: str, what: str = "the text") -> None:
    """Raise TextError when ``text`` holds a surrogate code point (U+D800-U+DFFF).

    A lone half of a UTF-16 pair (JSON's ``"\\ud800"``, broken UTF-16) is a Python string but
    no text: it cannot be written as UTF-8, and the language detector and the dictionaries
    fail on it with their own errors. It is the only thing UTF-8 cannot encode.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise TextError(f"{what} is not valid text: character {error.start + 1} is U+{ord(text[error.start]):04X}, "
                        "half of a UTF-16 surrogate pair; send UTF-8 text") from None
