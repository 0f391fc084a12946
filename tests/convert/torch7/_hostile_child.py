"""Read each hostile case in this process under a per-case alarm; print {case: outcome} as JSON.

``python _hostile_child.py MANIFEST.json``: the manifest lists {name, file, call, kw}. An outcome is "ok", the
K5Error class raised (with its message), "timeout", or "crash:<exception type>" for anything else.
"""

import json
import signal
import sys
import traceback


class _Timeout(BaseException):
    pass


def _alarm(signum, frame):
    raise _Timeout()


def main() -> None:
    from k5.convert.torch7 import from_torch7, read_t7
    from k5.errors import K5Error

    signal.signal(signal.SIGALRM, _alarm)
    out = {}
    with open(sys.argv[1]) as f:
        manifest = json.load(f)
    for case in manifest:
        signal.alarm(10)
        try:
            if case["call"] == "convert":
                from_torch7(case["file"], **case["kw"])
            else:
                read_t7(case["file"], **case["kw"])
            out[case["name"]] = ["ok", ""]
        except _Timeout:
            out[case["name"]] = ["timeout", ""]
        except K5Error as e:
            out[case["name"]] = [type(e).__name__, str(e)]
        except Exception as e:  # noqa: BLE001 - anything else is the failure this test looks for
            out[case["name"]] = [f"crash:{type(e).__name__}", traceback.format_exc()[-1500:]]
        finally:
            signal.alarm(0)
    print(json.dumps(out))


main()
