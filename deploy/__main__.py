"""`python -m deploy ...` is the `ddb` command."""

from deploy.cli import main

main()
