from parivision.cli import main

main()
