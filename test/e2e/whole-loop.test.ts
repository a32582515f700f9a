/**
 * The README's "whole loop in five commands" with every node on Bun (whole-loop-walkthrough.ts).
 */
import { describeWholeLoop } from './whole-loop-walkthrough.ts'

describeWholeLoop('bun')
