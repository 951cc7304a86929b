"""``--trigger-command``: the suite runs a command to act as the human in the helpdesk, instead of
asking the operator.

The command runs through the shell, with ``{conversation_id}`` replaced by the conversation's id
(shell-quoted) and ``FINDESK_CONFORMANCE_CONVERSATION_ID`` and ``FINDESK_CONFORMANCE_ACTION``
(``reply``, ``replies``, ``take_over``) in its environment. A command that fails or outlasts its
timeout fails the check that needed it, with its exit code and output.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess

from findesk.conformance.checks import Failed, snippet
from findesk.conformance.interactive import Instruction, Prompt

OUTPUT_LIMIT = 400


def command_prompt(command: str, timeout: float = 60.0) -> Prompt:
    """A prompt that runs ``command`` for each instruction (see the module)."""

    def run(instruction: Instruction) -> None:
        cid = instruction.conversation_id
        line = command.replace("{conversation_id}", shlex.quote(cid))
        env = os.environ | {
            "FINDESK_CONFORMANCE_CONVERSATION_ID": cid,
            "FINDESK_CONFORMANCE_ACTION": instruction.action,
        }
        what = f"the trigger command (action {instruction.action})"
        # Its own process group, so that a timeout ends whatever the shell started too.
        process = subprocess.Popen(  # noqa: S602 (the operator's own command line)
            line,
            shell=True,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            output, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
            raise Failed(
                f"{what} did not finish within {timeout:g} s; its output: {_shown(output)}"
            ) from None
        if process.returncode != 0:
            raise Failed(
                f"{what} exited with code {process.returncode}; its output: {_shown(output)}"
            )

    return run


def _shown(output: bytes) -> str:
    text = output.decode("utf-8", "replace").strip()
    return snippet(text, OUTPUT_LIMIT) if text else "(none)"
