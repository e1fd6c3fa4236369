"""``python -m suandian``: the same as the ``suandian`` command."""

from suandian.cli import main

if __name__ == "__main__":
    main()
