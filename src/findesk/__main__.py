from findesk.cli import main

main()
