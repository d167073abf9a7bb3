import net from 'node:net';

// Ports handed out by this process: the OS may return a just-released port again, and two clusters
// booting side by side must not be told to bind the same one.
const handedOut = new Set<number>();

export async function freePort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = await bindEphemeral();
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('could not find a free TCP port on 127.0.0.1');
}

export function releasePort(port: number): void {
  handedOut.delete(port);
}

function bindEphemeral(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
      const addr = srv.address();
      srv.close(() => {
        if (addr && typeof addr === 'object') resolve(addr.port);
        else reject(new Error('listen returned no port'));
      });
    });
  });
}
