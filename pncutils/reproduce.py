"""``python -m pncutils.reproduce``: the command line of :mod:`pncutils.book.reproduce`.

An alias kept so that the command every result file records keeps working; the code lives in
the book layer. ``import pncutils`` never imports this module.
"""

import sys

from pncutils.book.reproduce import main

if __name__ == "__main__":
    sys.exit(main())
