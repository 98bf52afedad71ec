"""`python -m nlp4keras migrate ...`: the `nlp4keras` command."""

import sys

from nlp4keras.cli import main

if __name__ == "__main__":
    sys.exit(main())
