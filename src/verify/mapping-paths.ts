/** Field paths in a mapping: one walker for every check that names a field (capture fields, verify.ignore). */

/** The mapping node at a dotted path (through `properties`), or undefined when the path is not mapped. */
function nodeAt(mappings: Record<string, unknown>, path: string): Record<string, unknown> | undefined {
  let node: unknown = mappings;
  for (const part of path.split('.')) {
    const props = (node as { properties?: Record<string, unknown> } | undefined)?.properties;
    if (!props || !(part in props)) return undefined;
    node = props[part];
  }
  return node as Record<string, unknown>;
}

/** The field's mapped type ('object' for an object field), or undefined when it is not in the mapping. */
export function fieldType(mappings: Record<string, unknown>, path: string): string | undefined {
  const node = nodeAt(mappings, path);
  return node ? ((node.type as string | undefined) ?? 'object') : undefined;
}

export function mappingHasPath(mappings: Record<string, unknown>, path: string): boolean {
  return nodeAt(mappings, path) !== undefined;
}
