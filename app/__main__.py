"""Command line: `python -m app segment PATH... --out DIR`, `python -m app worker`
(see app/cli/, one file per verb)."""

import argparse
import sys

from app.cli import segment, worker

_VERBS = {"segment": segment, "worker": worker}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app",
                                     description="SAM segmentation service, from the command line.")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for name, module in _VERBS.items():
        module.add_parser(verbs, name)
    args = parser.parse_args(argv)
    return _VERBS[args.verb].run(args)


if __name__ == "__main__":
    sys.exit(main())
