"""`python -m sweeptrainer` is the same as `trainer`."""

from sweeptrainer.cli import main

if __name__ == "__main__":
    main()
