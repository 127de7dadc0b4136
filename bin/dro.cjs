#!/usr/bin/env node
// Entry point for the `dro` command: the TypeScript sources run through tsx's require hook.
// The AWS SDK warns on every command under Node 20 that *later* SDK releases will need Node 22;
// the lockfile pins a release that supports Node 20, so the warning says nothing about this install.
// Setting the variable to "false" brings it back.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
require('tsx/cjs');
require('../cli/main.ts')
  .main(process.argv)
  .catch((err) => {
    console.error(err);
    process.exit(1);
  });
