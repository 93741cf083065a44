pytest_plugins = ["tests.hosts_fixture"]
