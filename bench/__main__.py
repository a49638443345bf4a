"""`python -m bench`: the whole benchmark (options: `python -m bench --help`)."""

from bench.run import main

if __name__ == "__main__":
    raise SystemExit(main())
