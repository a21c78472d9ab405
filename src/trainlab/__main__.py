"""``python -m trainlab`` runs the command line; so does ``torchrun ... -m trainlab run NAME``.

The ``trainlab`` script starts here too: Ctrl-C, SIGTERM or SIGHUP while the command line's
libraries load (a second or so) ends with one line, not an import traceback.
"""

import sys

from trainlab.processes import interrupted, stop_like_ctrl_c


def main() -> None:
    try:
        # inside the try: a Ctrl-C between the handlers it sets (SIGTERM's, then SIGHUP's) is one line too
        stop_like_ctrl_c()
        from trainlab.cli import main as cli_main
    except KeyboardInterrupt as exc:
        print("interrupted", file=sys.stderr)
        sys.exit(interrupted(exc).exit_code)
    cli_main()


if __name__ == "__main__":
    main()
