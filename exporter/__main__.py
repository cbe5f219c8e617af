from exporter.app.cli.main import main

main()
