#!/usr/bin/env python3
"""example_reward_process.py -- an external reward program for `score --reward-process`.

It speaks the protocol of reward-process-1.json (JSON lines on stdin/stdout) with the standard
library only, and computes a real reward: the colourfulness of Hasler and Suesstrunk (2003),
sqrt(std_rg^2 + std_yb^2) + 0.3 sqrt(mean_rg^2 + mean_yb^2) with rg = R - G and
yb = (R + G) / 2 - B, divided by 255 (about 0 for grey images, up to about 0.7).

Replace `colourfulness` with a call into your own model (HPS-v2.1, PickScore, ImageReward, a VLM
judge) to bring it into the pipeline; keep stdout for protocol lines and write logs to stderr.

    score --reward-process "python3 schemas/example_reward_process.py" INPUT -o OUT

The --fail-* options make it misbehave on purpose, to test how `score` reports failures.
"""
import argparse
import base64
import json
import math
import sys
import time


def colourfulness(height, width, rgb):
    n = height * width
    rg = [rgb[3 * i] - rgb[3 * i + 1] for i in range(n)]
    yb = [0.5 * (rgb[3 * i] + rgb[3 * i + 1]) - rgb[3 * i + 2] for i in range(n)]
    mean_rg, mean_yb = sum(rg) / n, sum(yb) / n
    std_rg = math.sqrt(sum((x - mean_rg) ** 2 for x in rg) / n)
    std_yb = math.sqrt(sum((x - mean_yb) ** 2 for x in yb) / n)
    return (math.hypot(std_rg, std_yb) + 0.3 * math.hypot(mean_rg, mean_yb)) / 255.0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fail-after", type=int, default=-1, help="crash (exit 3) at this batch")
    parser.add_argument("--sleep", type=float, default=0.0, help="seconds to wait before each reply")
    parser.add_argument("--wrong-count", action="store_true", help="send one score too few")
    parser.add_argument("--nan", action="store_true", help="send NaN for the first image")
    args = parser.parse_args()

    def send(message):
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()

    batches = 0
    for line in sys.stdin:
        message = json.loads(line)
        kind = message.get("type")
        if kind == "hello":
            send({"type": "hello", "version": 1, "name": "colourfulness",
                  "settings": {"metric": "hasler-suesstrunk-2003", "scale": "1/255"}})
        elif kind == "score":
            if batches == args.fail_after:
                print("example_reward_process: failing on purpose at batch %d" % batches, file=sys.stderr)
                sys.exit(3)
            batches += 1
            time.sleep(args.sleep)
            scores = [colourfulness(im["height"], im["width"], base64.b64decode(im["data"]))
                      for im in message["images"]]
            if args.wrong_count:
                scores = scores[:-1]
            if args.nan:
                scores[0] = float("nan")
            send({"type": "scores", "id": message["id"], "scores": scores})
        elif kind == "bye":
            break
        else:
            send({"type": "error", "message": "unknown message type %r" % kind})
    return 0


if __name__ == "__main__":
    sys.exit(main())
