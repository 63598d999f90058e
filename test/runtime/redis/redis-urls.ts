/**
 * REDIS_URL cases shared by the configuration check's tests and the Redis client's: one parser
 * serves both, so every URL the check accepts must build a client, and every one it refuses must
 * be refused by the client too.
 */

/** URLs loadConfig accepts (and createRedisClient builds a client for). */
export const ACCEPTED_REDIS_URLS: readonly string[] = [
  'redis://127.0.0.1:6379',
  'redis://127.0.0.1',
  'redis://127.0.0.1:6379/',
  'redis://127.0.0.1:6379/2',
  'redis://user:secret@redis.internal:6379/0',
  'redis://us%40er:p%40ss%2Fw0rd@redis.internal:6379',
  'rediss://:secret@redis.internal:6380',
  'redis://[::1]:6379',
  'redis-sentinel://s1:26379,s2:26379,s3:26379/mymaster',
  'redis-sentinel://:secret@s1:26379/mymaster',
  'redis-sentinel://user:p%40ss@10.0.0.1:26379,10.0.0.2:26379/iot-primary',
  'redis-sentinel://[fd00::1]:26379,s2:26379/mymaster',
  'redis-sentinel://:secret@s1:26379,s2:26379/mymaster?sentinelPassword=s%40nt',
  'redis-sentinel://s1:26379/mymaster?sentinelUsername=watch&sentinelPassword=x',
  'redis-cluster://c1:7000,c2:7001,c3:7002',
  'redis-cluster://:secret@c1:7000',
];

/** URLs loadConfig refuses, with a part of the reason its message gives. */
export const REFUSED_REDIS_URLS: readonly (readonly [url: string, why: string])[] = [
  ['localhost:6379', 'must start with redis://, rediss://, redis-sentinel:// or redis-cluster://'],
  ['http://redis:6379', 'must start with'],
  ['redis://', 'lists no host'],
  ['redis://r:6379/cache', 'the path is a database number, not "cache"'],
  ['redis://r:6379/0/1', 'the path is a database number, not "0/1"'],
  ['redis://a:6379,b:6379', 'names one server'],
  ['redis://h/0?db=3', '"?db=…": a query string or fragment is not read'],
  ['redis://h:6379#frag', '"#frag": a query string or fragment is not read'],
  ['redis://:pa%zz@h', 'the password has a bad %-escape'],
  ['redis://us%zzer:pw@h', 'the user name has a bad %-escape'],
  ['redis://secret@h:6379', 'credentials are written user:password@ or :password@'],
  ['redis://[::1:6379', 'is not host:port'],
  ['redis://[nope]:6379', '"nope" is not a host name, IPv4 address or [IPv6] address'],
  ['redis://h:70000', 'port 70000 of "h:70000" is not 1..65535'],
  ['redis-sentinel://s1:26379,s2:26379', 'needs the master name as its path'],
  ['redis-sentinel://s1:26379/', 'needs the master name as its path'],
  ['redis-sentinel:///mymaster', 'lists no host'],
  ['redis-sentinel://s1:26379,/mymaster', '"" is not host:port'],
  ['redis-sentinel://s1/mymaster', '"s1" has no port'],
  ['redis-sentinel://s1:99999/mymaster', 'port 99999 of "s1:99999" is not 1..65535'],
  ['redis-sentinel://s1:0/mymaster', 'port 0 of "s1:0" is not 1..65535'],
  ['redis-sentinel://s1:port/mymaster', '"s1:port" is not host:port'],
  ['redis-sentinel://s1:26379/a/b', 'the master name "a/b" contains "/"'],
  ['redis-sentinel://s1:26379/mymaster?db=3', 'query parameter "db" is not read: only sentinelPassword and sentinelUsername are'],
  ['redis-sentinel://s1:26379/mymaster?sentinelPassword=a&sentinelPassword=b', 'query parameter sentinelPassword is given twice'],
  ['redis-sentinel://s1:26379/mymaster?sentinelPassword=', 'query parameter sentinelPassword is empty'],
  ['redis-sentinel://s1:26379/mymaster?sentinelPassword=p%zz', 'the sentinelPassword has a bad %-escape'],
  ['redis-sentinel://s1:26379/mymaster?sentinelPassword=p@ss', 'its Sentinel credentials contain a raw "@": write @ as %40'],
  ['redis-sentinel://s1:26379/mymaster?sentinelPassword=p#x', 'a fragment is not read; write # in a Sentinel password as %23'],
  ['redis-cluster://c1:7000?sentinelPassword=x', '"?sentinelPassword=…": a query string or fragment is not read'],
  ['redis-sentinel://s1:26379/mymaster#x', 'a query string or fragment is not read'],
  ['redis-sentinel://:p@ss@s1:26379,s2:26379/mymaster', 'write @ in the password as %40'],
  ['redis-cluster://', 'lists no host'],
  ['redis-cluster://c1:7000,c2', '"c2" has no port'],
  ['redis-cluster://c1:7000/0', 'a Redis Cluster URL takes no path'],
  ['redis-cluster://secret@c1:7000', 'credentials are written user:password@ or :password@'],
  ['redis-cluster://:bad%zz@c1:7000', 'the password has a bad %-escape'],
];
