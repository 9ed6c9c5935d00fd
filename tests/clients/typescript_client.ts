// A fetch client typed by openapi-typescript's schema.d.ts (generated from
// /api/openapi.json by tests/test_generated_clients.py, which type-checks this
// file against it with tsc --strict, then runs it with node BASE_URL TOKEN).
// It lists, pages by `next`, filters, reads a film, writes it back with the ETag
// it read, and reads a problem; any surprise throws (exit status 1).
import type { components, paths } from "./schema.js";

type MovieList = components["schemas"]["MovieList"];
type MovieDetail = components["schemas"]["MovieDetail"];
type PeopleList = components["schemas"]["PeopleList"];
type Problem = components["schemas"]["ProblemDetails"];
type MovieFields = components["schemas"]["MovieFields"];
type ListQuery = NonNullable<paths["/api/movies"]["get"]["parameters"]["query"]>;
type ExportedFilms =
  paths["/api/movies/export"]["get"]["responses"]["200"]["content"]["application/json"];

declare const process: { argv: string[]; exitCode?: number };
const [base, token] = process.argv.slice(2);

function check(condition: boolean, what: string): asserts condition {
  if (!condition) throw new Error(what);
}

function query(params: ListQuery | Record<string, string | number>): string {
  const pairs = Object.entries(params).map(([name, value]) => [name, String(value)]);
  return "?" + new URLSearchParams(pairs).toString();
}

async function get<T>(path: string): Promise<{ status: number; etag: string | null; body: T }> {
  const response = await fetch(base + path);
  return { status: response.status, etag: response.headers.get("ETag"), body: await response.json() };
}

async function main(): Promise<void> {
  // List, then page by next to the end, in a descending sort.
  const sort: ListQuery["sort"] = "-title";
  let page = await get<MovieList>("/api/movies" + query({ limit: 3, sort }));
  const titles = page.body.items.map((film) => film.title);
  while (page.body.next !== null) {
    page = await get<MovieList>("/api/movies" + page.body.next);
    check(page.status === 200, `next answered ${page.status}`);
    titles.push(...page.body.items.map((film) => film.title));
  }
  check(titles.length > 3, "one page only");
  check(JSON.stringify(titles) === JSON.stringify([...titles].sort().reverse()), "not -title");

  // Filter, and the other lists.
  const dramas = await get<MovieList>("/api/movies" + query({ genre: "drama", year_min: 1980 }));
  check(dramas.body.items.length > 0, "no drama");
  check(dramas.body.items.every((film) => film.year >= 1980 && film.genres.includes("Drama")), "filter");
  const people = await get<PeopleList>("/api/people?q=ford");
  check(people.body.items.map((person) => person.name).join() === "Harrison Ford", "people");
  const exported = await get<ExportedFilms>("/api/movies/export?format=json");
  // Typed items (an untyped array's would not compile).
  check(exported.body.length === titles.length, "export");
  check(exported.body.every((film) => film.title.length > 0 && Array.isArray(film.genres)), "rows");

  // Read a film, write it back with its ETag; the old ETag is then refused.
  const id = dramas.body.items[0].id;
  const read = await get<MovieDetail>(`/api/movies/${id}`);
  check(read.status === 200 && read.etag !== null, "read");
  const change: MovieFields = { rating: 6.5 };
  async function patch(etag: string): Promise<Response> {
    return fetch(`${base}/api/movies/${id}`, {
      method: "PATCH",
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json", "If-Match": etag },
      body: JSON.stringify(change),
    });
  }
  const written = await patch(read.etag);
  const film: MovieDetail = await written.json();
  check(written.status === 200 && film.rating === 6.5, `write answered ${written.status}`);

  // A problem, read through its type.
  const stale = await patch(read.etag);
  const problem: Problem = await stale.json();
  check(stale.headers.get("Content-Type") === "application/problem+json", "problem type");
  check(problem.status === 412 && problem.title === "Precondition Failed", "412");
  const missing = await get<Problem>("/api/movies/1000000000");
  check(missing.body.status === 404 && missing.body.type === "about:blank", "404");
  console.log("typescript client: ok");
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
