import assert from 'node:assert/strict';
import * as net from 'node:net';
import { test } from 'node:test';
import { choosePort } from '../../infra/temporal-server';

test('a busy port is refused naming the setting that moves it: the frontend or the web UI', async () => {
  const busy = net.createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  const port = (busy.address() as net.AddressInfo).port;
  try {
    await assert.rejects(
      choosePort(port, 7233, '127.0.0.1'),
      (err: Error) =>
        err.message.includes(`127.0.0.1:${port} is already in use`) &&
        /temporal\.embeddedPort to 0/.test(err.message),
    );
    await assert.rejects(choosePort(port, 8233, '127.0.0.1', 'temporal.embeddedUiPort'), (err: Error) =>
      /set temporal\.embeddedUiPort to 0/.test(err.message),
    );
    const free = await choosePort(0, port, '127.0.0.1', 'temporal.embeddedUiPort');
    assert.notEqual(free, port);
  } finally {
    busy.close();
  }
});
