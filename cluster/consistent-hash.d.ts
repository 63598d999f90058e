/** Types for the `consistent-hash` package (it ships none). */
declare module 'consistent-hash' {
  interface ConsistentHashOptions {
    range?: number;
    weight?: number;
    distribution?: 'random' | 'uniform';
  }
  class ConsistentHash {
    constructor(options?: ConsistentHashOptions);
    readonly nodeCount: number;
    readonly keyCount: number;
    add(node: string, weight?: number, points?: number[]): this;
    remove(node: string): this;
    get(resource: string): string | null;
    get(resource: string, count: number): string[];
    getNodes(): string[];
    getPoints(node: string): number[];
  }
  export = ConsistentHash;
}
