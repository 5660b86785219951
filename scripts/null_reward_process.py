#!/usr/bin/env python3
"""null_reward_process.py -- a reward that carries no signal, for `score --reward-process`.

Each image scores 1 with probability 0.2 and 0 otherwise, decided by a hash of its bytes: the
same image always gets the same score, but no smooth change of the image predicts it. That is
the built-in strict reward's pass rate on the base model (about 20 %) without its information,
so gradient measurements on it (scripts/gradient_coherence.sh) give the floor that pure
sampling noise reaches. Speaks reward-process-1.json with the standard library only.

    REWARDS="--reward-process $PWD/scripts/null_reward_process.py" \\
      scripts/gradient_coherence.sh out/gc null out/attrA16.txt
"""
import hashlib
import json
import sys


def score(data):
    digest = hashlib.sha256(data.encode("ascii")).digest()
    return 1.0 if int.from_bytes(digest[:8], "little") < 0.2 * 2**64 else 0.0


def main():
    for line in sys.stdin:
        message = json.loads(line)
        kind = message.get("type")
        if kind == "hello":
            reply = {"type": "hello", "version": 1, "name": "null", "settings": {"pass_rate": 0.2}}
        elif kind == "score":
            reply = {"type": "scores", "id": message["id"],
                     "scores": [score(im["data"]) for im in message["images"]]}
        elif kind == "bye":
            break
        else:
            reply = {"type": "error", "message": "unknown message type %r" % kind}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
