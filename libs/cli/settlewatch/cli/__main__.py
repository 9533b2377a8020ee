from settlewatch.cli.main import main

main()
