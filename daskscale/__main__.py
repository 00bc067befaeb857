from daskscale.cli import main

main()
