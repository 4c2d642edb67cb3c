import { describe, expect, test } from 'vitest';
import { completeLines, eventLines, LineFollower, longerOf } from '../../cli/output.js';

describe('completeLines', () => {
  test.each([
    ['', false, []],
    ['', true, []],
    ['lock acquired', false, []],
    ['lock acquired', true, ['lock acquired']],
    ['a\nb\n', false, ['a', 'b']],
    ['a\nb\nc', false, ['a', 'b']],
    ['a\r\nb\r\n', false, ['a', 'b']],
    ['a\n\nb\n', false, ['a', '', 'b']],
  ])('%j (ended: %s) -> %j', (text, ended, lines) => {
    expect(completeLines(text, ended)).toEqual(lines);
  });
});

describe('eventLines', () => {
  test('each event holds whole lines; an event with several lines gives each', () => {
    expect(eventLines(['bluegreen [ 0.03s] lock', 'x\ny', 'last\n'])).toEqual(['bluegreen [ 0.03s] lock', 'x', 'y', 'last']);
  });
});

describe('LineFollower over cumulative output', () => {
  test('hands out only the lines that are new since the last look, a half-written line once it is complete', () => {
    const follower = new LineFollower();
    const seen: string[][] = [];
    const look = (cumulative: string, ended = false) => seen.push([...follower.next(completeLines(cumulative, ended))]);

    look('');
    look('bluegreen [  0.03s] lock     acquired\nbluegreen [  0.08s] check');
    look('bluegreen [  0.03s] lock     acquired\nbluegreen [  0.08s] check    artifact ok\n');
    look('bluegreen [  0.03s] lock     acquired\nbluegreen [  0.08s] check    artifact ok\n');
    look('bluegreen [  0.03s] lock     acquired\nbluegreen [  0.08s] check    artifact ok\nbluegreen [  1.14s] done     v3 is live', true);

    expect(seen).toEqual([
      [],
      ['bluegreen [  0.03s] lock     acquired'],
      ['bluegreen [  0.08s] check    artifact ok'],
      [],
      ['bluegreen [  1.14s] done     v3 is live'],
    ]);
    expect(follower.count).toBe(3);
  });

  test('a source that knows fewer lines than were handed out (the other source was ahead) gives nothing again', () => {
    const follower = new LineFollower();
    expect(follower.next(['a', 'b', 'c'])).toEqual(['a', 'b', 'c']);
    expect(follower.next(['a', 'b'])).toEqual([]);
    expect(follower.next(['a', 'b', 'c', 'd'])).toEqual(['d']);
  });
});

test('longerOf picks the view that knows more lines', () => {
  expect(longerOf(['a'], ['a', 'b'])).toEqual(['a', 'b']);
  expect(longerOf(['a', 'b'], ['a'])).toEqual(['a', 'b']);
});
