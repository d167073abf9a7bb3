/** The allocation explain as the watchdog and doctor show it, and the reroute advice: printed, each with its cost. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { formatExplain, rerouteAdvice, summariseExplain } from '../../src/cluster/allocation.js';

// The shape Elasticsearch 8 answers for a primary held back by an allocation filter (trimmed).
const body = {
  index: 'orders-v2',
  shard: 0,
  primary: true,
  current_state: 'unassigned',
  unassigned_info: { reason: 'INDEX_CREATED', details: undefined },
  can_allocate: 'no',
  allocate_explanation:
    "Elasticsearch isn't allowed to allocate this shard to any of the nodes in the cluster.",
  node_allocation_decisions: [
    {
      node_name: 'node-1',
      node_decision: 'no',
      deciders: [
        {
          decider: 'filter',
          decision: 'NO',
          explanation:
            'node does not match index setting [index.routing.allocation.require] filters [_name:"nope"]',
        },
        { decider: 'same_shard', decision: 'YES', explanation: 'not on the same node' },
      ],
    },
  ],
};

it('summarises the explain: shard, reason, and only the deciders that said no', () => {
  const e = summariseExplain(body);
  assert.equal(e.index, 'orders-v2');
  assert.equal(e.primary, true);
  assert.equal(e.reason, 'INDEX_CREATED');
  assert.deepEqual(e.nodes, [
    {
      node: 'node-1',
      decision: 'no',
      why: [
        'filter: node does not match index setting [index.routing.allocation.require] filters [_name:"nope"]',
      ],
    },
  ]);
  assert.equal(
    formatExplain(e),
    'orders-v2[0] primary unassigned (INDEX_CREATED): Elasticsearch isn\'t allowed to allocate this shard to any of the nodes in the cluster.; filter: node does not match index setting [index.routing.allocation.require] filters [_name:"nope"]',
  );
});

it('advises the safe retry first, and a stale primary only for a primary, under its data-loss warning', () => {
  const primary = rerouteAdvice(summariseExplain(body));
  assert.equal(primary.length, 2);
  assert.match(primary[0]!, /safe, loses nothing\): POST _cluster\/reroute\?retry_failed=true$/);
  assert.match(primary[1]!, /^last resort .*DATA LOSS.*cutover never sends this\)/);
  const cmd = JSON.parse(primary[1]!.replace(/^.*POST _cluster\/reroute /, ''));
  assert.deepEqual(cmd, {
    commands: [
      { allocate_stale_primary: { index: 'orders-v2', shard: 0, node: 'node-1', accept_data_loss: true } },
    ],
  });
  const replica = rerouteAdvice(summariseExplain({ ...body, primary: false }));
  assert.equal(replica.length, 1, 'no stale-primary advice for a replica');
});
