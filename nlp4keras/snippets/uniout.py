"""bert4keras' `uniout`, kept so `from nlp4keras.snippets import uniout` works.

Under Python 2, importing the `uniout` package made `print` show the
characters of Chinese (and other non-ASCII) strings inside lists and dicts
instead of escapes; bert4keras imported it only there. Python 3 already
prints them, so this module does nothing.
"""
