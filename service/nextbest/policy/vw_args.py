"""The VW arguments a policy may set, and how they become the scorer's arguments.

Exploration is nextbest's own (bounded by ``max_epsilon``, aware of masks and of actions
that must not be explored), so VW scores with ``--cb_adf``: the same learner that
``--cb_explore_adf`` wraps, learning from the same labels and logged probabilities.
"""

from __future__ import annotations

import shlex

DEFAULT_VW_ARGS = "--cb_explore_adf -q ia -q ca --cubic ica --power_t 0 -l 0.1"

# Exploration lives in the policy's `exploration:` block, where it is bounded and live.
_EXPLORATION = {
    "--epsilon",
    "--first",
    "--bag",
    "--cover",
    "--softmax",
    "--lambda",
    "--squarecb",
    "--gamma_scale",
    "--gamma_exponent",
    "--regcb",
    "--regcbopt",
    "--rnd",
    "--synthcover",
    "--psi",
    "--nounif",
    "--large_action_space",
    "--explore_eval",
    "--epsilon_decay",
}
# Files, sockets and input formats: nextbest (and `nextbest evaluate`) own them.
FILE_OPTIONS = frozenset(
    {
        "-d",
        "--data",
        "-i",
        "--initial_regressor",
        "-f",
        "--final_regressor",
        "--daemon",
        "--port",
        "-p",
        "--predictions",
        "-r",
        "--raw_predictions",
        "--cache",
        "-c",
        "--cache_file",
        "--readable_model",
        "--invert_hash",
        "--dsjson",
        "--json",
        "--passes",
    }
)
# ... and so do the learner's reduction, its logging and its state files, not a policy.
_FORBIDDEN = FILE_OPTIONS | {
    "--save_resume",
    "--audit",
    "-a",
    "--quiet",
    "--cb_adf",
    "--cb",
    "--cb_explore",
    "--ccb_explore_adf",
    "--slates",
    "--cats",
    "--cb_dro",
    "--audit_regressor",
}


def check_vw_args(vw_args: str) -> list[str]:
    """Split and check a policy's vw_args; ValueError says which argument is not allowed."""
    try:
        tokens = shlex.split(vw_args)
    except ValueError as exc:
        raise ValueError(f"cannot split vw_args: {exc}") from None
    if "--cb_explore_adf" not in tokens:
        raise ValueError("vw_args must contain --cb_explore_adf")
    for token in tokens:
        flag = token.split("=", 1)[0]
        if flag in _EXPLORATION:
            raise ValueError(
                f"{flag} is not allowed in vw_args: exploration is set under `exploration:`"
            )
        if flag in _FORBIDDEN:
            raise ValueError(f"{flag} is not allowed in vw_args: nextbest manages it")
    return tokens


def scorer_args(vw_args: str) -> str:
    """The arguments VW runs with: --cb_adf in place of --cb_explore_adf, quiet."""
    tokens = ["--cb_adf" if t == "--cb_explore_adf" else t for t in check_vw_args(vw_args)]
    return shlex.join([*tokens, "--quiet"])


_INTERACTION_FLAGS = {"-q": 2, "--quadratic": 2, "--cubic": 3, "--interactions": 0}


def interactions(vw_args: str) -> list[str]:
    """The namespace crossings the arguments ask for (``-q ca`` → ``"ca"``; ``:`` is VW's
    wildcard for every namespace), so that the cost of an example can be bounded before VW
    builds it."""
    tokens = check_vw_args(vw_args)
    out: list[str] = []
    for i, token in enumerate(tokens):
        flag, eq, value = token.partition("=")
        if flag not in _INTERACTION_FLAGS and token[:2] == "-q" and len(token) > 2:
            flag, value, eq = "-q", token[2:], "="  # the glued short form: -qca
        if flag not in _INTERACTION_FLAGS:
            continue
        if not eq:
            value = tokens[i + 1] if i + 1 < len(tokens) else ""
        out.extend(v for v in value.split(",") if v)
    return out
