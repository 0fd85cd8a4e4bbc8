#!/usr/bin/env python3
"""Runs the README's grpcurl examples against a demo server and checks their answers.

An example is a ```sh block directly followed by an output block (```text or ```json). The
command runs in bash, with the README's `localhost:50051` turned into the port the demo server
actually got (it listens on a free one, so that two runs on one machine never collide); every line of the output block, trimmed, must appear in the command's
output in the same order. A line `...` stands for any number of lines. A sh block without an
output block after it is not run.

Usage: readme_examples.py BINARY [README]
"""

import functools
import os
import re
import subprocess
import sys
import tempfile
import threading

FENCE = re.compile(r"^```(\w*)\s*$")


def examples(readme):
    """(command, expected lines) pairs, in README order."""
    blocks, lang, lines = [], None, []
    for line in open(readme, encoding="utf-8").read().splitlines():
        fence = FENCE.match(line)
        if fence and lang is None:
            lang, lines = fence.group(1), []
        elif line.strip() == "```" and lang is not None:
            blocks.append((lang, lines))
            lang = None
        elif lang is not None:
            lines.append(line)
    found = []
    for (lang, body), (next_lang, expected) in zip(blocks, blocks[1:]):
        if lang == "sh" and next_lang in ("text", "json"):
            found.append(("\n".join(body), [l.strip() for l in expected if l.strip()]))
    return found


def matches(expected, actual):
    """Whether `expected` lines appear in order in `actual`, `...` matching any run of lines.

    Lines after the last expected one are allowed; each `...` may match zero or more lines, and
    the match backtracks, so `...` before `}` is not fooled by an inner brace.
    """
    lines = [l.strip() for l in actual.splitlines() if l.strip()]

    @functools.lru_cache(maxsize=None)
    def from_here(i, j):
        if i == len(expected):
            return True
        if expected[i] == "...":
            return any(from_here(i + 1, k) for k in range(j, len(lines) + 1))
        return j < len(lines) and lines[j] == expected[i] and from_here(i + 1, j + 1)

    return from_here(0, 0)


def listening_port(process, log):
    """The port of the server's `listening on ADDR` line; its other output goes to `log`."""
    for line in process.stdout:
        log.write(line)
        log.flush()
        if line.startswith("listening on "):
            port = int(line.strip().rsplit(":", 1)[1])
            threading.Thread(target=lambda: log.writelines(process.stdout), daemon=True).start()
            return port
    sys.exit(f"the demo server exited with {process.wait()} before listening")


def main():
    binary = os.path.abspath(sys.argv[1])
    readme = os.path.abspath(sys.argv[2] if len(sys.argv) > 2 else "README.md")
    found = examples(readme)
    if not found:
        sys.exit("no examples found in the README")
    workdir = tempfile.mkdtemp(prefix="readme-examples-")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "COUPON_"))}
    log = open(os.path.join(workdir, "server.log"), "w")
    server = subprocess.Popen([binary, "serve", "--demo", "--listen", "127.0.0.1:0",
                               "--metrics-listen", "127.0.0.1:0"], cwd=workdir, env=env,
                              stdout=subprocess.PIPE, stderr=log, text=True)
    passed = failed = 0
    try:
        port = listening_port(server, log)
        for command, expected in found:
            run = subprocess.run(["bash", "-c", command.replace("localhost:50051", f"localhost:{port}")],
                                 cwd=workdir, capture_output=True,
                                 text=True, timeout=60)
            output = run.stdout + run.stderr
            if matches(expected, output):
                passed += 1
                print(f"ok: {command.splitlines()[0]}")
            else:
                failed += 1
                print(f"FAILED: {command}\n--- expected (in order) ---\n" + "\n".join(expected)
                      + f"\n--- got ---\n{output}")
    finally:
        server.terminate()
        code = server.wait(timeout=30)
    if code != 0:
        failed += 1
        print(f"FAILED: the demo server exited with {code} on SIGTERM")
    print(f"readme examples: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
