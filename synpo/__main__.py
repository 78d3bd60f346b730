from synpo.cli import main

main()
