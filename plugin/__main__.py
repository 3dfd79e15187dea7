"""``python -m tracemend``: the same command line as the ``tracemend`` script."""

from tracemend.cli import main

if __name__ == "__main__":
    main()
