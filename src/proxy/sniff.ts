/**
 * A client that sniffs asks `_nodes/http` for the nodes' addresses and then talks to them directly, around the
 * proxy, and its writes go unjournaled. The proxy answers with itself as every node's HTTP address, so a
 * sniffing client keeps talking to the proxy.
 */

interface NodesInfo {
  nodes?: Record<string, { http?: { publish_address?: unknown; bound_address?: unknown } }>;
}

/** The nodes-info response with each node's http publish and bound addresses replaced; how many nodes had one. */
export function rewriteNodesHttp(body: unknown, address: string): { body: unknown; nodes: number } {
  const info = body as NodesInfo;
  let nodes = 0;
  if (!info || typeof info !== 'object' || !info.nodes || typeof info.nodes !== 'object')
    return { body, nodes };
  for (const node of Object.values(info.nodes)) {
    if (!node?.http || typeof node.http !== 'object') continue;
    node.http.publish_address = address;
    if (node.http.bound_address !== undefined) node.http.bound_address = [address];
    nodes++;
  }
  return { body, nodes };
}
