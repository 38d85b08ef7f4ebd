// A partner portal's story, through a client generated from the served
// OpenAPI 3 document (openapi-typescript + openapi-fetch) and type-checked
// with tsc --strict: a field or parameter the document names differently
// from the wire does not compile, and a value the server leaves out or
// sends as null where the document promises one fails below. The Go test
// that runs it (e2e/openapi_client_test.go) validates every response body
// against the document as well.
import createClient from "openapi-fetch";
import type { components, paths } from "./schema.js";

type Restore = components["schemas"]["v1Restore"];
type Status = components["schemas"]["rpcStatus"];

const base = need("RESTORED_URL");
const token = need("RESTORED_TOKEN");
const rpID = need("RESTORED_RECOVERY_POINT");
const otherTenantRestore = need("RESTORED_OTHER_RESTORE");

function need(name: string): string {
  const v = process.env[name];
  if (!v) {
    throw new Error(`${name} is not set`);
  }
  return v;
}

function must(cond: boolean, what: string): asserts cond {
  if (!cond) {
    throw new Error(what);
  }
}

const api = createClient<paths>({ baseUrl: base, headers: { Authorization: `Bearer ${token}` } });

function step(what: string) {
  console.log(`- ${what}`);
}

// checkRestore checks what the document promises of a restore.
function checkRestore(r: Restore | undefined, what: string): Restore {
  must(r !== undefined, `${what}: no restore in the answer`);
  must(typeof r.id === "string" && r.id.length > 0, `${what}: id ${r.id}`);
  must(r.recovery_point_id === rpID, `${what}: recovery_point_id ${r.recovery_point_id}`);
  must(typeof r.state === "string" && r.state.startsWith("RESTORE_STATE_"), `${what}: state ${r.state}`);
  must(typeof r.state_reason === "string", `${what}: state_reason ${r.state_reason}`);
  must(typeof r.create_time === "string" && !Number.isNaN(Date.parse(r.create_time)), `${what}: create_time ${r.create_time}`);
  must(typeof r.memory_mib === "string" && Number(r.memory_mib) >= 96, `${what}: memory_mib ${r.memory_mib}`);
  must(r.network?.kind === "NETWORK_KIND_NONE", `${what}: network ${JSON.stringify(r.network)}`);
  // An unset message is left out, never null.
  must(r.destroy_time === undefined, `${what}: destroy_time ${r.destroy_time}`);
  must(r.verify === undefined, `${what}: verify ${JSON.stringify(r.verify)}`);
  return r;
}

async function main() {
  step("list the tenant's recovery points");
  const rps = await api.GET("/v1/recovery-points", { params: { query: { page_size: 10 } } });
  must(rps.response.status === 200 && rps.data !== undefined, `list recovery points: HTTP ${rps.response.status}`);
  const rp = rps.data.recovery_points?.find((p) => p.id === rpID);
  must(rp !== undefined, `recovery point ${rpID} is not listed`);
  must(rp.asset === "web-01" && rp.valid === true && rp.invalid_reason === "", `recovery point ${JSON.stringify(rp)}`);
  must(rps.data.next_page_token === "", `next_page_token ${rps.data.next_page_token}`);

  step("create two restores");
  const ids: string[] = [];
  for (const requestID of ["portal-1", "portal-2"]) {
    const created = await api.POST("/v1/restores", {
      body: { recovery_point_id: rpID, mode: "MODE_VIRTUALIZE", memory_mib: "256", request_id: requestID },
    });
    must(created.response.status === 200, `create: HTTP ${created.response.status} ${JSON.stringify(created.error)}`);
    ids.push(checkRestore(created.data, "create").id!);
  }

  step("get one, and page through the list one at a time");
  const got = await api.GET("/v1/restores/{id}", { params: { path: { id: ids[0]! } } });
  checkRestore(got.data, "get");
  const page1 = await api.GET("/v1/restores", { params: { query: { page_size: 1, recovery_point_id: rpID } } });
  must(page1.data?.restores?.length === 1 && page1.data.next_page_token !== "", `page 1: ${JSON.stringify(page1.data)}`);
  const page2 = await api.GET("/v1/restores", {
    params: { query: { page_size: 1, recovery_point_id: rpID, page_token: page1.data.next_page_token } },
  });
  must(page2.data?.restores?.length === 1, `page 2: ${JSON.stringify(page2.data)}`);
  must(page2.data.restores[0]!.id !== page1.data.restores[0]!.id, "page 2 repeats page 1");
  const filtered = await api.GET("/v1/restores", { params: { query: { state: "RESTORE_STATE_EXPIRED" } } });
  must(filtered.data?.restores?.length === 0, `state filter: ${JSON.stringify(filtered.data)}`);

  step("another tenant's restore answers 404 with the error body the document declares");
  const foreign = await api.GET("/v1/restores/{id}", { params: { path: { id: otherTenantRestore } } });
  must(foreign.response.status === 404, `foreign restore: HTTP ${foreign.response.status}`);
  const notFound: Status | undefined = foreign.error;
  must(notFound?.code === 5 && typeof notFound.message === "string" && Array.isArray(notFound.details), `404 body ${JSON.stringify(notFound)}`);

  step("bad input answers 400 and says which field");
  const bad = await api.POST("/v1/restores", { body: { recovery_point_id: rpID, mode: "MODE_VIRTUALIZE", vcpus: 999, request_id: "portal-bad" } });
  must(bad.response.status === 400 && (bad.error?.message ?? "").includes("vcpus"), `bad input: HTTP ${bad.response.status} ${JSON.stringify(bad.error)}`);

  step("verifications and hosts");
  const vs = await api.GET("/v1/verifications", { params: { query: { asset: "web-01" } } });
  must(vs.response.status === 200 && Array.isArray(vs.data?.verifications), `verifications: ${JSON.stringify(vs.data)}`);
  const hosts = await api.GET("/v1/hosts");
  must(hosts.response.status === 403 && hosts.error?.code === 7, `a partner may not list hosts: HTTP ${hosts.response.status}`);

  step("watch: a bad token is refused with 401 before the stream opens");
  const refused = await fetch(`${base}/v1/restores:watch`, { headers: { Authorization: "Bearer not-a-token" } });
  must(refused.status === 401, `watch with a bad token: HTTP ${refused.status}`);
  const chunk = (await refused.json()) as paths["/v1/restores:watch"]["get"]["responses"]["default"]["content"]["application/json"];
  must(chunk.error?.code === 16, `refused watch body ${JSON.stringify(chunk)}`);

  step("watch: the stream opens and sends the tenant's restores");
  const ac = new AbortController();
  const watch = await fetch(`${base}/v1/restores:watch?recovery_point_id=${encodeURIComponent(rpID)}`, {
    headers: { Authorization: `Bearer ${token}` }, signal: ac.signal,
  });
  must(watch.status === 200 && watch.body !== null, `watch: HTTP ${watch.status}`);
  const reader = watch.body.getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    must(!done, "the watch ended before its first event");
    text += new TextDecoder().decode(value);
  }
  const event = JSON.parse(text.split("\n")[0]!) as paths["/v1/restores:watch"]["get"]["responses"][200]["content"]["application/json"];
  checkRestore(event.result?.restore, "watch event");
  ac.abort();

  step("delete the restores");
  for (const id of ids) {
    const deleted = await api.DELETE("/v1/restores/{id}", { params: { path: { id } } });
    must(deleted.response.status === 200, `delete: HTTP ${deleted.response.status}`);
    const state = checkRestore(deleted.data, "delete").state;
    must(state === "RESTORE_STATE_STOPPING" || state === "RESTORE_STATE_DESTROYED", `deleted restore is ${state}`);
  }
  console.log("the partner's story went through the generated client");
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
