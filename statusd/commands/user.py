"""`statusd user …`: desk accounts, on the server only (root or the statusd group).

These commands open the store directly and never go over the network: an
account is made by whoever runs the server, not by anyone who can reach it.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

from statusd import paths
from statusd.commands.shared import common, load_config
from statusd.config.load import Config
from statusd.desk import db as desk_db
from statusd.desk.accounts import ROLES, Accounts, Person
from statusd.desk.limits import Limits
from statusd.desk.tokens import Tokens
from statusd.errors import UserError

Handler = Callable[[argparse.Namespace, Config, Accounts, Tokens], None]


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    user = sub.add_parser("user", help="desk accounts: add, list, edit, disable, reset, tokens, revoke")
    common(user)
    verbs = user.add_subparsers(dest="verb", required=True, metavar="VERB")
    for verb, handler, text in (
        ("add", _add, "make an account and print its one-time enrolment link"),
        ("list", _list, "every account, its role, sites and state"),
        ("edit", _edit, "change an account's display name, role or sites"),
        ("disable", _disable, "stop an account (its tokens stop working)"),
        ("enable", _enable, "let a disabled account in again"),
        ("reset", _reset, "forget the password, revoke the tokens, print a new enrolment link"),
        ("tokens", _tokens, "an account's tokens and sessions"),
        ("revoke", _revoke, "revoke one token of an account (by id), or all of them"),
    ):
        command = verbs.add_parser(verb, help=text)
        common(command)
        if verb != "list":
            command.add_argument("account", help="the account name, e.g. annexe-desk")
        if verb in ("add", "edit"):
            command.add_argument("--name", dest="display", help='the display name, e.g. "Annexe desk"')
            command.add_argument("--sites", help="the sites it may change, comma-separated, e.g. main,annexe")
            command.add_argument("--role", choices=ROLES, default="desk" if verb == "add" else None,
                                 help="desk: flip, preview, undo its own; lead: also any update of its sites; "
                                      "admin: every site")
            command.add_argument("--email", help="the person's e-mail: single sign-on matches on it "
                                                 "(when the provider says it is verified); \"\" clears it")
            command.add_argument("--sso-subject", help="the person's subject (sub) at the identity provider: "
                                                       "single sign-on matches on it first; \"\" clears it")
        if verb == "revoke":
            command.add_argument("token", nargs="?", help="the token's id (`statusd user tokens`); default: all")
        command.set_defaults(handler=_run(handler))


def _run(handler: Handler) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        config = load_config(args)
        # Accounts decide who may change what: managing them takes the right to change the
        # configuration itself (root on a server), which desk staff in the statusd group lack.
        if not os.access(config.path, os.W_OK):
            raise UserError(f"statusd user manages who may change what, so it needs the right to change "
                            f"{config.path}: run it as root (sudo statusd user …) or as the owner of that file")
        with _opened(args, config) as (accounts, tokens):
            handler(args, config, accounts, tokens)
        return 0
    return run


@contextmanager
def _opened(args: argparse.Namespace, config: Config) -> Iterator[tuple[Accounts, Tokens]]:
    db = desk_db.open_desk(config, paths.store_path(paths.state_dir(args.state_dir, config)))
    try:
        accounts = Accounts(db)
        yield accounts, Tokens(db, accounts)
    finally:
        db.close()


def _sites(text: str | None) -> list[str] | None:
    return None if text is None else [s.strip() for s in text.split(",") if s.strip()]


def _link(config: Config, accounts: Accounts, name: str) -> None:
    code = accounts.enrolment(name, config.desk.enrol_valid)
    hours = config.desk.enrol_valid / 3600
    print(f"Enrolment link for {name} (works once, for {hours:g} h): {config.public_url}/desk/enrol/{code}")


def _add(args: argparse.Namespace, config: Config, accounts: Accounts, tokens: Tokens) -> None:
    accounts.add(args.account, args.display or args.account, args.role, _sites(args.sites) or [], config.sites)
    if args.email is not None or args.sso_subject is not None:
        accounts.link(args.account, args.email, args.sso_subject)
    print(f"Account {args.account} made: {_describe(accounts.require(args.account))}.")
    _link(config, accounts, args.account)


def _list(args: argparse.Namespace, config: Config, accounts: Accounts, tokens: Tokens) -> None:
    people = accounts.all()
    if not people:
        print("No desk accounts yet; add one with `statusd user add NAME --name \"…\" --sites SITE`.")
    for person in people:
        state = ("disabled" if person.disabled else "active" if person.enrolled
                 else "single sign-on" if person.sso_subject or person.email else "waiting for enrolment")
        print(f"{person.name:<20} {person.role:<6} {_sites_text(person):<24} {state:<22} {person.display}")


def _edit(args: argparse.Namespace, config: Config, accounts: Accounts, tokens: Tokens) -> None:
    person = accounts.edit(args.account, args.display, args.role, _sites(args.sites), config.sites)
    if args.email is not None or args.sso_subject is not None:
        person = accounts.link(args.account, args.email, args.sso_subject)
    print(f"Account {person.name}: {_describe(person)}.")


def _disable(args: argparse.Namespace, config: Config, accounts: Accounts, tokens: Tokens) -> None:
    accounts.set_disabled(args.account, True)
    count = tokens.revoke(args.account, None)
    print(f"Account {args.account} disabled; {count} token(s) revoked.")


def _enable(args: argparse.Namespace, config: Config, accounts: Accounts, tokens: Tokens) -> None:
    accounts.set_disabled(args.account, False)
    print(f"Account {args.account} enabled; it logs in with its password as before.")


def _reset(args: argparse.Namespace, config: Config, accounts: Accounts, tokens: Tokens) -> None:
    accounts.reset(args.account)
    count = tokens.revoke(args.account, None)
    Limits(accounts.db).clear(args.account)  # a reset is how a locked-out person gets back in
    print(f"Account {args.account}: password forgotten, {count} token(s) revoked, login lock lifted.")
    _link(config, accounts, args.account)


def _tokens(args: argparse.Namespace, config: Config, accounts: Accounts, tokens: Tokens) -> None:
    accounts.require(args.account)
    issued = tokens.listed(args.account)
    if not issued:
        print(f"{args.account} has no tokens.")
    for token in issued:
        state = f"revoked {_when(token.revoked_at)}" if token.revoked_at else f"last used {_when(token.last_used)}"
        print(f"{token.id}  {token.kind:<8} made {_when(token.created_at)}  {state}  {token.label}")


def _revoke(args: argparse.Namespace, config: Config, accounts: Accounts, tokens: Tokens) -> None:
    accounts.require(args.account)
    count = tokens.revoke(args.account, args.token)
    print(f"{count} token(s) of {args.account} revoked.")


def _describe(person: Person) -> str:
    links = [f"e-mail {person.email}"] if person.email else []
    links += [f"single sign-on subject {person.sso_subject!r}"] if person.sso_subject else []
    return f"{person.role} for {_sites_text(person)}, shown as {person.display!r}" + "".join(
        f", {link}" for link in links)


def _sites_text(person: Person) -> str:
    return "every site" if person.role == "admin" else ",".join(person.sites)


def _when(stamp: float | None) -> str:
    return datetime.fromtimestamp(stamp or 0).strftime("%Y-%m-%d %H:%M")
