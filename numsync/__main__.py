from numsync.cli import run

run()
