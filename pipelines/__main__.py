"""``python -m pipelines`` and the ``tft-preprocessing`` console script
(``console``): the program, whose policy for its own process is
``pipelines.process``'s; the commands are ``pipelines.cli``'s."""

from pipelines import process


def console() -> None:
    """Runs the command the process's arguments name, then ends the process."""
    process.become_the_program()
    from pipelines.cli import main

    process.exit_now(main() or 0)


if __name__ == "__main__":
    console()
