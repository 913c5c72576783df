from preprocgate.cli import main

main()
