/**
 * The README's "whole loop in five commands" with the loop, the detector and the trainer on Deno, each started
 * as its `deno task` in deno.json starts it (same permission flags): REST and socket.io serving, inference, the
 * outbox's uploads, the trainer's process, the hot swap to the trained model, SIGTERM → exit 0
 * (whole-loop-walkthrough.ts).
 */
import { describeWholeLoop } from '../e2e/whole-loop-walkthrough.ts'

describeWholeLoop('deno')
