"""Summarise py-spy collapsed stacks (`python -m bench --profile DIR`): where the server's CPU goes.

    python -m bench.profile_report DIR/02-sqlite-user.txt [--top 25] [--thread MainThread]

Prints the samples per thread, then the functions of one thread (default: the event loop's
MainThread) by inclusive share (the function and what it calls) and by self share (its own
code). py-spy samples only threads that are running, so a share is a share of CPU time.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_LINE = re.compile(r"^(.*) (\d+)$")
_FRAME = re.compile(r"^(.*) \((.*?)(?::\d+)?\)$")


def _frame_key(frame: str) -> str:
    m = _FRAME.match(frame)
    if not m:
        return frame
    func, where = m.groups()
    return f"{where}:{func}"


def _thread_name(frame: str) -> str:
    # "thread (6616): MainThread" / "thread (6617): bcrypt_0" / "thread (…): Thread-3 (_connection_worker_thread)"
    name = frame.split(": ", 1)[1] if ": " in frame else frame
    return re.sub(r"_\d+$", "_N", re.sub(r"^Thread-\d+", "Thread-N", name))


def load(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in path.read_text(errors="replace").splitlines():
        m = _LINE.match(line.strip())
        if m:
            stacks.append((m.group(1).split(";"), int(m.group(2))))
    return stacks


def report(path: Path, top: int = 25, thread: str = "MainThread") -> str:
    stacks = load(path)
    total = sum(n for _, n in stacks) or 1
    threads: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    picked = 0
    for frames, n in stacks:
        name = _thread_name(frames[0]) if frames and frames[0].startswith("thread") else "?"
        threads[name] += n
        if name != thread:
            continue
        picked += n
        keys = [_frame_key(f) for f in frames[1:]]
        for key in set(keys):
            inclusive[key] += n
        if keys:
            own[keys[-1]] += n
    out = [f"{path.name}: {total} samples"]
    out.append("threads: " + ", ".join(f"{name} {n / total:.0%}" for name, n in threads.most_common()))
    picked = picked or 1
    out.append(f"\n{thread}, inclusive (share of its {picked} samples):")
    for key, n in inclusive.most_common(top):
        out.append(f"  {n / picked:6.1%}  {key}")
    out.append(f"\n{thread}, self:")
    for key, n in own.most_common(top):
        out.append(f"  {n / picked:6.1%}  {key}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--thread", default="MainThread")
    args = parser.parse_args(argv)
    for path in args.files:
        print(report(path, args.top, args.thread))
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
