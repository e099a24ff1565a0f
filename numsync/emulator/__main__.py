"""``python -m numsync.emulator``: run :func:`numsync.emulator.command.emulator_command`."""

from numsync.emulator.command import emulator_command

if __name__ == "__main__":
    emulator_command(prog_name="python -m numsync.emulator")
