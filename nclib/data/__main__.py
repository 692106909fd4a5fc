"""``python -m nclib.data check PROFILE``: report whether every dataset of PROFILE is here; exit status 1 if not.
``python -m nclib.data fixtures ROOT``: write small fixture copies of the paper's datasets under ROOT, in their real
layouts (:mod:`nclib.data.fixtures`), for the dry run ``NCLIB_DATA_ROOT=ROOT ... params/paper-dryrun.yaml``.

PROFILE is a profile name (``mini``, ``paper``), a profile's YAML file, or a parameter file of the book such as
``params/paper.yaml`` (its ``profile``, ``overrides`` and ``device``, read as :func:`nclib.book.profile_of` does).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from nclib.config import Profile, load_profile
from nclib.data.check import check, report
from nclib.data.fixtures import write_fixtures


def resolve(name_or_path: str) -> Profile:
    """The profile that a profile name, a profile YAML file or a book parameter file names."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        parameters = yaml.safe_load(path.read_text())
        if isinstance(parameters, dict) and "profile" in parameters:
            from nclib.book import profile_of  # here, not above: nclib.book needs the book's extras (papermill)

            return profile_of(parameters)
    return load_profile(name_or_path)


def main(argv: list[str]) -> int:
    """Run the command line ``argv``; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m nclib.data", description="Datasets of nclib's profiles.")
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser("check", help="say which datasets a profile needs are here and how to get the rest")
    command.add_argument("profile", help="a profile name (mini, paper), a profile .yaml or a params file")
    command = commands.add_parser("fixtures", help="write fixture copies of the paper's datasets for the dry run")
    command.add_argument("root", type=Path, help="the folder to write them in (the dry run's data_root)")
    args = parser.parse_args(argv)
    if args.command == "fixtures":
        try:
            folders = write_fixtures(args.root)
        except FileExistsError as exc:
            parser.error(str(exc))
        print(f"Wrote the fixture datasets {', '.join(map(str, folders.values()))}.")
        return 0
    try:
        profile = resolve(args.profile)
    except ValueError as exc:  # an unknown profile or a bad key: say so as a usage error (exit status 2)
        parser.error(str(exc))
    findings = check(profile)
    print(report(profile, findings))
    return 0 if all(f.ok for f in findings) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
