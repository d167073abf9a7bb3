/** The two ends of every data path: where documents come from and where they go, each on its own cluster. */
import type { Cluster } from './client.js';

export interface IndexPair {
  source: Cluster;
  target: Cluster;
  sourceIndex: string;
  targetIndex: string;
}
