from tracemend.cli import main

main()
