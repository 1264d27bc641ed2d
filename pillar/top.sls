base:
  '*':
    - serverflow
