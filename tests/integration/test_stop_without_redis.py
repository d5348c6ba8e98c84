"""Stopped while Redis is gone: the consumer says that its final checkpoint failed.

A consumer has consumed gen's traffic exactly; Redis is then killed and the consumer gets
SIGTERM. Its final checkpoint (and the one of the revocation) cannot be written: nothing is lost
(the next owner consumes again from the last checkpoint, whose offsets and state agree), but the
work since that checkpoint is done twice and an operator must be able to tell. The consumer
exits within the shutdown's bound with status 1 (it exited 0) and logs "stopped without its final
checkpoint". A consumer stopped with Redis up exits 0 (every other test's finish_consumer).
"""
import sys

import harness as h


def main():
    env = h.Env(partitions=2, name="stopnoredis")
    env.config()
    ok, proc = h.run_exact(env, "before Redis goes", count=3000)
    redis_proc = env.procs[0]
    redis_proc.kill()
    redis_proc.wait(10)
    proc.terminate()
    code = proc.wait(60)
    ok &= h.report(code == 1, "exit status 1 when the final checkpoint failed", f"status {code}")
    lines = h.log_entries(env.log())
    said = [l for l in lines if l["msg"] == "stopped without its final checkpoint"]
    ok &= h.report(said and said[0]["level"] == "error", "logged as an error",
                   f"{said[:1]}")
    return h.close(env, ok)


if __name__ == "__main__":
    sys.exit(main())
