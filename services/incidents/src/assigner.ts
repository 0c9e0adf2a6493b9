/**
 * Co-partitioned assignment for kafkajs: partition p of EVERY subscribed topic goes to the same
 * group member. vehicle.scores, maintenance.incident-commands and vehicle.receipts are keyed by
 * vehicle_id with the same partitioner and partition count, so the member owning partition p sees
 * every input of the vehicles that hash to p, and alone writes their incidents.
 *
 * Partition numbers are dealt round-robin over the members sorted by id, so every member computes
 * the same answer and a partition number never splits across members.
 */
import { AssignerProtocol, type PartitionAssigner } from 'kafkajs';

export type Assignment = Record<string, number[]>;

/** Pure: member id -> topic -> partitions. Every member gets an entry, possibly empty. */
export function coPartitionedAssignment(memberIds: readonly string[], partitionsByTopic: Readonly<Record<string, readonly number[]>>): Map<string, Assignment> {
  const members = [...new Set(memberIds)].sort();
  const out = new Map<string, Assignment>(members.map((m) => [m, {}]));
  if (members.length === 0) return out;
  const numbers = [...new Set(Object.values(partitionsByTopic).flat())].sort((a, b) => a - b);
  numbers.forEach((p, i) => {
    const assignment = out.get(members[i % members.length]!)!;
    for (const [topic, partitions] of Object.entries(partitionsByTopic)) {
      if (!partitions.includes(p)) continue;
      (assignment[topic] ??= []).push(p);
    }
  });
  return out;
}

export const CO_PARTITIONED_ASSIGNER_NAME = 'PitwallCoPartitioned';

export const coPartitionedAssigner: PartitionAssigner = ({ cluster }) => ({
  name: CO_PARTITIONED_ASSIGNER_NAME,
  version: 0,
  async assign({ members, topics }) {
    const partitionsByTopic: Record<string, number[]> = {};
    for (const topic of topics) partitionsByTopic[topic] = cluster.findTopicPartitionMetadata(topic).map((m) => m.partitionId);
    const assignment = coPartitionedAssignment(
      members.map((m) => m.memberId),
      partitionsByTopic,
    );
    return [...assignment].map(([memberId, a]) => ({
      memberId,
      memberAssignment: AssignerProtocol.MemberAssignment.encode({ version: 0, assignment: a, userData: Buffer.alloc(0) }),
    }));
  },
  protocol({ topics }) {
    return { name: CO_PARTITIONED_ASSIGNER_NAME, metadata: AssignerProtocol.MemberMetadata.encode({ version: 0, topics, userData: Buffer.alloc(0) }) };
  },
});
