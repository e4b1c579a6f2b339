from cityops.cli import main

main()
