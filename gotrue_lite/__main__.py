"""Entry point of `python -m gotrue_lite`: the same command line as `gotrue-lite`."""

from gotrue_lite.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
