// Preloaded by bunfig.toml for every test file: quiet logs unless a test run asks for more.
process.env.LOG_LEVEL ??= 'warn'
